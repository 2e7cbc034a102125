# Thin wrappers; dev.py does the work (and runs where make does not).
PYTHON ?= python3

.PHONY: demo test lint bench docs
demo:
	$(PYTHON) dev.py demo
test:
	$(PYTHON) dev.py test
lint:
	$(PYTHON) dev.py lint
bench:
	$(PYTHON) dev.py bench
docs:
	$(PYTHON) dev.py docs
