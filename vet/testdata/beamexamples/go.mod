module example.com/beamexamples

go 1.26.0
