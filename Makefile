# Switchboard developer tasks. `go run .` and `go test ./...` need only Go;
# the asset targets need Node/npm (build-time only).

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# Everything generated from sources and committed: templ output, built CSS, vendored htmx.
# (git pathspec `*_templ.go` matches at any depth.)
GENERATED := views static/css static/js/htmx.min.js static/js/ext *_templ.go

.PHONY: help generate css vendor assets test run check-generated

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Install node_modules from the lock file when it is missing or older than the lock.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

generate: ## Regenerate templ output (*_templ.go).
	go tool templ generate

css: node_modules/.package-lock.json ## Build static/css/app.css with Tailwind.
	npm run --silent css

vendor: node_modules/.package-lock.json ## Copy the pinned htmx files into static/js.
	npm run --silent vendor

assets: vendor css ## vendor + css.

test: ## Run all tests with the race detector.
	go test -race ./...

run: ## Run the server (embedded SQLite by default).
	go run .

check-generated: generate assets ## Fail if generated files differ from what is committed.
	@stale="$$(git status --porcelain --untracked-files=all -- $(GENERATED))"; \
	if [[ -n "$$stale" ]]; then \
		echo "check-generated: these generated files are stale or uncommitted:" >&2; \
		echo "$$stale" | sed 's/^/    /' >&2; \
		echo "check-generated: run 'make generate assets' and commit the result." >&2; \
		exit 1; \
	fi; \
	echo "check-generated: generated files are up to date."
