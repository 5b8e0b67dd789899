package capture

import "testing"

func TestExcerpt(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"short output kept whole", []string{"abc", "def"}, "abcdef"},
		{"fills head then tail", []string{"0123", "4567"}, "01234567"},
		{"drops the middle", []string{"0123456789", "abcdef"}, "0123\n[... 2 bytes ...]\n6789abcdef"},
		{"cuts at line ends", []string{"01\n23456", "789\nabcdef"}, "01\n[... 9 bytes ...]\nabcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExcerpt(4, 10)
			for _, w := range tt.writes {
				if n, err := e.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := e.String(); got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
		})
	}
}
