# Set-up and everyday commands. Each target first makes sure libtorch (the
# PyPI torch==2.13.0 wheel, in ./.venv) is installed: see scripts/env.sh.
.PHONY: search test test-rust test-python python bench lint cuda test-slurm

# The main job: the paper's NAS-Bench-201 search on CIFAR-10, embedded data.
search:
	scripts/env.sh cargo run --release -- search

# The test suite (what CI runs): the engine's, then the Python package's.
test: test-rust test-python

test-rust:
	scripts/env.sh cargo test --release

# The Python package (python/): ./.venv-py with torch 2.13.0, the package
# built against it (maturin, LIBTORCH_USE_PYTORCH=1), pandas and pytest;
# xautodl (NB201's TinyNetwork) for the parity tests.
PY := $(CURDIR)/.venv-py
python:
	scripts/python.sh
	@echo "rbflex for Python is installed in ./.venv-py:"
	@echo "  . .venv-py/bin/activate && python -c 'import rbflex; help(rbflex.score)'"

test-python: python
	$(PY)/bin/python -m pytest -q python/tests  # from the root: python/rbflex (the sources) must not shadow the installed package

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
