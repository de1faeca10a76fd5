//! Adds an rpath to libtorch's libraries (from `LIBTORCH`, as set by
//! `scripts/env.sh`) so the binary runs without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    }
}
