// Package notmain is a library, not a program.
package notmain

// Answer is here so the package has something in it.
const Answer = 42
