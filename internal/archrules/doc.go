// Package archrules holds the tests that pin the layering of the module
// (ARCHITECTURE.md draws it): which package may import which of the
// module's packages (imports_test.go), and that every exported name of
// pkg/ and internal/ has a doc comment and every package a doc.go
// (docs_test.go). It has no code of its own; nothing imports it.
package archrules
