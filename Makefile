# Set-up and everyday commands. Each target first makes sure libtorch (the
# PyPI torch==2.13.0 wheel, in ./.venv) is installed: see scripts/env.sh.
.PHONY: search test bench lint cuda test-slurm

# The main job: the paper's NAS-Bench-201 search on CIFAR-10, embedded data.
search:
	scripts/env.sh cargo run --release -- search

# The test suite (what CI runs).
test:
	scripts/env.sh cargo test --release

# GPU machines: also install the CUDA libraries (then `--device auto` uses
# the GPU; see README "GPU").
cuda:
	scripts/env.sh --cuda true

# The Slurm recipe on a real (single-node, local) cluster: root and apt-get,
# else skipped with the reason (see scripts/test-slurm.sh).
test-slurm:
	scripts/test-slurm.sh

bench:
	scripts/env.sh cargo run --release -- bench --networks 500

lint:
	cargo fmt --check
	scripts/env.sh cargo clippy --release --all-targets -- -D warnings
