package model

import (
	"encoding/csv"
	"strings"
)

// Casbin policy types used by the model (see gatehouse.conf).
const (
	PTypePermission = "p"  // p, role:R, entity:E, object, action, allowed|allowed_for_own
	PTypeRole       = "p2" // p2, role:R, entity:E, name, created, updated
	PTypeLink       = "g"  // g, user:U|default:E, role:R|default:E, entity:E
	PTypeOwner      = "g2" // g2, partner:P, entity:E
)

// Rule is one Casbin policy rule in Gatehouse's persistence format: its
// policy type and its values, as an adapter stores them.
type Rule struct {
	PType  string
	Values []string
}

// Section returns the Casbin section of the rule: "p" or "g".
func (r Rule) Section() string {
	if r.PType == "" {
		return ""
	}
	return r.PType[:1]
}

// String returns the rule as a line of a Casbin CSV policy file.
func (r Rule) String() string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(append([]string{r.PType}, r.Values...)) // writes to a strings.Builder cannot fail
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// Equal reports whether r and o are the same rule.
func (r Rule) Equal(o Rule) bool {
	if r.PType != o.PType || len(r.Values) != len(o.Values) {
		return false
	}
	for i := range r.Values {
		if r.Values[i] != o.Values[i] {
			return false
		}
	}
	return true
}
