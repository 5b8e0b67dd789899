// Command notbeam is a program that is not a Beam pipeline.
package main

import "fmt"

func main() { fmt.Println("hello") }
