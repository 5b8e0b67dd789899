// Package svgtest reads the SVG beamctl-svg draws, for tests: it must
// be well-formed XML, and name what it draws.
package svgtest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
)

// Names reads an SVG as XML and returns the text of its title elements,
// where Graphviz names each node, and of its text elements, what a person
// reads: an SVG that is not well-formed XML is an error.
func Names(data []byte) (titles, texts []string, err error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	// As a browser reads SVG: a stray & or an unclosed element is an error.
	dec.Strict = true
	var in string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return titles, texts, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			in = tok.Name.Local
		case xml.EndElement:
			in = ""
		case xml.CharData:
			switch in {
			case "title":
				titles = append(titles, string(tok))
			case "text":
				texts = append(texts, string(tok))
			}
		}
	}
}
