package scheduler

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseConstraint(t *testing.T) {
	cases := []struct {
		in   string
		want Constraint
		str  string // canonical form
	}{
		{"zone == a", Constraint{Label: "zone", Op: OpEqual, Values: []string{"a"}}, "zone == a"},
		{"  zone==a  ", Constraint{Label: "zone", Op: OpEqual, Values: []string{"a"}}, "zone == a"},
		{"zone != c", Constraint{Label: "zone", Op: OpNotEqual, Values: []string{"c"}}, "zone != c"},
		{"zone in [a, b]", Constraint{Label: "zone", Op: OpIn, Values: []string{"a", "b"}}, "zone in [a, b]"},
		{"zone in[a]", Constraint{Label: "zone", Op: OpIn, Values: []string{"a"}}, "zone in [a]"},
		{"zone not in [a,b , c]", Constraint{Label: "zone", Op: OpNotIn, Values: []string{"a", "b", "c"}}, "zone not in [a, b, c]"},
		{"rack == rack-*", Constraint{Label: "rack", Op: OpEqual, Values: []string{"rack-*"}}, "rack == rack-*"},
		{"gpu", Constraint{Label: "gpu", Op: OpExists}, "gpu"},
		{"!gpu", Constraint{Label: "gpu", Op: OpNotExists}, "!gpu"},
		{"~ !gpu", Constraint{Soft: true, Label: "gpu", Op: OpNotExists}, "~!gpu"},
		{"~disk == ssd", Constraint{Soft: true, Label: "disk", Op: OpEqual, Values: []string{"ssd"}}, "~disk == ssd"},
		{"node.name != node3", Constraint{Label: "node.name", Op: OpNotEqual, Values: []string{"node3"}}, "node.name != node3"},
		{`team == "blue team"`, Constraint{Label: "team", Op: OpEqual, Values: []string{"blue team"}}, `team == "blue team"`},
		{`team == ""`, Constraint{Label: "team", Op: OpEqual, Values: []string{""}}, `team == ""`},
		{`rack in ["r[12]", x]`, Constraint{Label: "rack", Op: OpIn, Values: []string{"r[12]", "x"}}, `rack in ["r[12]", x]`},
		{"example.com/tier == web", Constraint{Label: "example.com/tier", Op: OpEqual, Values: []string{"web"}}, "example.com/tier == web"},
		{"in == x", Constraint{Label: "in", Op: OpEqual, Values: []string{"x"}}, "in == x"},
	}
	for _, c := range cases {
		got, err := ParseConstraint(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		got.globs = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
		if s := got.String(); s != c.str {
			t.Errorf("%q: String() = %q, want %q", c.in, s, c.str)
		}
	}
}

func TestParseConstraintErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"zone ==", `constraint "zone ==": at 8: expected a value`},
		{"", `constraint "": at 1: expected a label`},
		{"~", `constraint "~": at 2: expected a label`},
		{"== a", `constraint "== a": at 1: expected a label`},
		{"zone = a", `constraint "zone = a": at 6: expected an operator (==, !=, in, not in) or the end`},
		{"zone == a b", `constraint "zone == a b": at 11: unexpected "b", expected the end`},
		{"zone in a", `constraint "zone in a": at 9: expected '['`},
		{"zone in [a", `constraint "zone in [a": at 11: expected ',' or ']'`},
		{"zone in [a,]", `constraint "zone in [a,]": at 12: expected a value`},
		{"zone in []", `constraint "zone in []": at 10: expected a value`},
		{"zone not [a]", `constraint "zone not [a]": at 10: expected 'in' after 'not'`},
		{`zone == "a`, `constraint "zone == \"a": at 9: expected a closing '"'`},
		{`rack == "r[1"`, `constraint "rack == \"r[1\"": at 9: bad glob pattern "r[1"`},
		{"!gpu == x", `constraint "!gpu == x": at 6: unexpected "== x", expected the end`},
		{"zone @ a", `constraint "zone @ a": at 6: expected an operator (==, !=, in, not in) or the end`},
	}
	for _, c := range cases {
		_, err := ParseConstraint(c.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %v, want a *ParseError", c.in, err)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.in, err, c.want)
		}
	}
}

func TestConstraintMatches(t *testing.T) {
	labels := map[string]string{"zone": "a", "rack": "rack-12", "disk": "ssd", "empty": ""}
	cases := []struct {
		rule string
		want bool
	}{
		{"zone == a", true},
		{"zone == b", false},
		{"zone != a", false},
		{"zone != b", true},
		{"missing != b", true}, // a missing label equals nothing
		{"missing == b", false},
		{"zone in [b, a]", true},
		{"zone in [b, c]", false},
		{"missing in [a]", false},
		{"zone not in [b, c]", true},
		{"zone not in [a]", false},
		{"missing not in [a]", true},
		{"rack == rack-*", true},
		{"rack == rack-2?", false},
		{"rack in [x, rack-1*]", true},
		{"rack != rack-*", false},
		{`rack == "rack-1[0-5]"`, true},
		{"disk", true},
		{"gpu", false},
		{"!gpu", true},
		{"!disk", false},
		{"empty", true},
		{`empty == ""`, true},
		{"node.name == node1", true},
		{"node.name != node1", false},
		{"node.name == node*", true},
		{"~zone == b", false}, // softness is the ranker's business
	}
	for _, c := range cases {
		rule, err := ParseConstraint(c.rule)
		if err != nil {
			t.Fatalf("%q: %v", c.rule, err)
		}
		if got := rule.Matches("node1", labels); got != c.want {
			t.Errorf("%q on node1 %v: got %v, want %v", c.rule, labels, got, c.want)
		}
	}
}

func TestConstraintCacheParsesOnce(t *testing.T) {
	var cc constraintCache
	a, err := cc.get("zone == a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cc.get("zone == a")
	if a != b {
		t.Error("the same text parsed twice")
	}
	if _, err := cc.get("zone =="); err == nil {
		t.Error("a bad rule was accepted from the cache")
	}
	if _, err := cc.get("zone =="); err == nil {
		t.Error("a bad rule was accepted from the cache the second time")
	}
}

// FuzzParseConstraint: the parser never panics, and whatever it accepts
// renders to a form that parses back to the same rule.
func FuzzParseConstraint(f *testing.F) {
	for _, seed := range []string{"zone == a", "zone in [a, b]", "~!gpu", `x == "a b"`, "rack == rack-*", "a not in [x]"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConstraint(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos < 1 || pe.Pos > len(in)+1 {
				t.Fatalf("%q: bad error %v", in, err)
			}
			return
		}
		again, err := ParseConstraint(c.String())
		if err != nil {
			t.Fatalf("%q rendered as %q does not parse: %v", in, c.String(), err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("%q: %+v rendered as %q parses to %+v", in, c, c.String(), again)
		}
		c.Matches("n", map[string]string{"zone": "a"})
	})
}
