# Two commands for a fresh clone (see README): `make run` and `make test` (ruff, then the unit tests, the examples in
# the package's docstrings and the notebooks).
# Each installs into .venv once; the stamp is renewed only when pyproject.toml changes.
VENV    ?= .venv
PYTHON  ?= python3
PROFILE ?= cpu
DATASET ?= synthetic
DATA    ?= $(STEELNB_DATA)
OUT     ?= runs/detect-$(notdir $(DATASET))-$(PROFILE)
TRAIN_OUT ?= runs/$(notdir $(DATASET))-$(PROFILE)
OVERWRITE ?=
STAMP   := $(VENV)/.installed

.PHONY: run train test lint reproduce

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e ".[dev,cpu]"
	$(VENV)/bin/python -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $@

# The main job: which images of a pile are defective, and where (the built-in synthetic pile at 256 px by default).
run: $(STAMP)
	STEELNB_OVERWRITE_HINT=OVERWRITE=1 $(VENV)/bin/steelnb detect --profile $(PROFILE) --dataset $(DATASET) $(if $(DATA),--data-root $(DATA)) \
		$(if $(filter synthetic,$(DATASET)),--max-side 256) --out-dir $(OUT) $(if $(OVERWRITE),--overwrite)

# The paper's joint method: the pile clustered (into defect types, or defect / defect-free).
train: $(STAMP)
	STEELNB_OVERWRITE_HINT=OVERWRITE=1 $(VENV)/bin/steelnb train --profile $(PROFILE) --dataset $(DATASET) $(if $(DATA),--data-root $(DATA)) \
		--out-dir $(TRAIN_OUT) $(if $(OVERWRITE),--overwrite)

# Every temporary folder of the tests (pytest's, the docstring examples', the notebooks' kernels) goes under one private
# folder, removed when all pass and named when some fail: repeated runs must not fill the disk (a run writes GBs).
test: $(STAMP)
	$(VENV)/bin/ruff check steelnb tests benchmarks
	scratch=$$(mktemp -d -t steelnb-test-XXXXXX) || exit 1; \
	TMPDIR=$$scratch $(VENV)/bin/python -m pytest -q --nbval-lax --doctest-modules steelnb tests notebooks; status=$$?; \
	if [ $$status -eq 0 ]; then rm -rf $$scratch; else echo "the failed tests' folders are kept in $$scratch"; fi; \
	exit $$status

reproduce: $(STAMP)
	./reproduce.sh --profile $(PROFILE) $(if $(DATA),--data-root $(DATA))
