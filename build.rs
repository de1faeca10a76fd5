//! Adds an rpath to libtorch's libraries (from `LIBTORCH`, as set by
//! `scripts/env.sh`) so the binary runs without LD_LIBRARY_PATH, and compiles
//! `csrc/` (a custom autograd function, see `src/nets/pool.rs`) against the
//! libtorch that torch-sys links: its headers sit beside its `lib` folder, in
//! the PyPI wheel as in a libtorch archive (or under `LIBTORCH_INCLUDE`, as
//! torch-sys reads it).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-env-changed=LIBTORCH_INCLUDE");
    println!("cargo:rerun-if-changed=csrc/avg_pool.cpp");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    }
    // torch-sys' `cargo:libtorch_lib` (its manifest has `links = "tch"`)
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys gives its libtorch lib folder"));
    // torch-sys' own override for headers kept apart from the libraries
    let root = match std::env::var("LIBTORCH_INCLUDE") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => lib.parent().expect("libtorch's lib folder has a parent").to_path_buf(),
    };
    // torch 2.13's wheels and archives use the C++11 ABI, as torch-sys assumes
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // the note that GCC 4.6 changed how 32-byte vectors are passed
        .flag("-Wno-psabi")
        // additions and divisions stay separate IEEE operations, as libtorch's
        .flag("-ffp-contract=off")
        .file("csrc/avg_pool.cpp")
        .compile("rbflex_csrc");
}
