//! The engine's modules import one another in one direction only: no file imports one that
//! imports it back, directly or not (doc links to items of the crate root do not count).

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name == "lib" {
            continue;
        }
        // A module's own submodules (`typed/growth.rs`) are part of it.
        let text = if path.is_dir() {
            let mut text = String::new();
            for file in std::fs::read_dir(&path).unwrap() {
                text.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap());
            }
            text
        } else {
            std::fs::read_to_string(&path).unwrap()
        };
        modules.entry(name).or_default().push_str(&text);
    }
    let names: Vec<&String> = modules.keys().collect();
    let index = |name: &str| names.iter().position(|n| *n == name);
    let deps: Vec<Vec<usize>> = modules
        .values()
        .map(|text| {
            let mut uses: Vec<usize> = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .flat_map(|line| {
                    line.match_indices("crate::")
                        .map(move |(at, _)| &line[at + 7..])
                })
                .filter_map(|rest| {
                    let module: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    index(&module)
                })
                .collect();
            uses.sort_unstable();
            uses.dedup();
            uses
        })
        .collect();
    assert!(
        deps.iter().map(Vec::len).sum::<usize>() > 20,
        "imports are found"
    );
    let id = index("id").unwrap();
    assert!(deps[id].is_empty(), "`id` is a leaf module");
    let cycles: Vec<Vec<&str>> = dag_cycles::cycles(&deps)
        .into_iter()
        .map(|cycle| cycle.into_iter().map(|m| names[m].as_str()).collect())
        .collect();
    assert!(
        cycles.is_empty(),
        "modules import each other in a circle: {cycles:?}"
    );
}
