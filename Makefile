# Every target is a thin wrapper: the logic lives in scripts and Go code.
.PHONY: images test run clean-leftovers
images:
	bash fixtures/images/build.sh
