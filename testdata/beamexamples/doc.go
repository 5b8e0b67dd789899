// Package beamexamples is a module of its own from which the tests load,
// build and run the Beam Go SDK's examples, as a user's module would:
// the vet checks (no false findings), the runs of Beam's wordcount on
// every 64-bit Linux target, and its graph. wordcountlower is that
// wordcount with one ParDo more, which graph --diff must name.
package beamexamples
