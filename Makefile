# The two commands of a fresh machine (README): `make demo` runs the main job, `make test` runs the
# suite; both set up .venv on first use (./setup.sh installs exactly constraints.txt).
VENV := .venv
STAMP := $(VENV)/.setup-done
OUT ?= demo_out

.PHONY: demo test setup
setup: $(STAMP)

$(STAMP): setup.sh constraints.txt pyproject.toml scripts/system_deps.sh
	./setup.sh
	touch $@

demo: $(STAMP)
	$(VENV)/bin/soaes demo --output $(OUT)

# -rs: the summary names every skipped test and why (large-data tests without ../shared, …)
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -rs -p no:cacheprovider
