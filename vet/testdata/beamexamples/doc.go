// Package beamexamples is a module of its own from which the tests check
// the Beam Go SDK's examples, which run correctly, for false findings.
package beamexamples
