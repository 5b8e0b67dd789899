package boot

// The tests run pools as beamctl's local pool does, with loopback's
// LocalFiles, and loopback imports this package: they are an external test
// package, and these are the internals they check.
const PartialPrefix = partialPrefix

var StagedNames = stagedNames
