// Package arch holds the repository's architecture check: docs/architecture.md
// has a table of every Go package (where things live: what each holds and
// which of the repository's packages it may import), and the test keeps
// that table and the tree in step. A new package without a row, a row
// without a package, or an import the row does not allow fails it.
package arch
