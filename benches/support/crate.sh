# Sourced by the scripts in benches/: `new_crate DIR NAME ROOT` makes DIR a crate named NAME
# (with an empty src/) that depends on the dagjoin checkout at ROOT by path, with the same
# dependency versions as that workspace (cargo drops what the crate does not use).
new_crate() {
    local dir="$1" name="$2" root="$3"
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<MANIFEST
[package]
name = "$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
dagjoin = { path = "$root" }

[workspace]
MANIFEST
    if [ -f "$root/Cargo.lock" ]; then
        cp "$root/Cargo.lock" "$dir/Cargo.lock"
    fi
}
