package collector

import (
	"strings"
	"testing"
)

// TestDropsConfigValidated: settings the drop export cannot work with are refused by name; off,
// its topic is not looked at.
func TestDropsConfigValidated(t *testing.T) {
	base := DefaultConfig()
	base.Iface = "lo"
	base.Kafka.Brokers = []string{"127.0.0.1:9"}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"same topic as packets", func(c *Config) { c.DropsTopic = c.Topic }, "drops topic"},
		{"same topic as flows", func(c *Config) { c.DropsTopic = c.FlowsTopic }, "drops topic"},
		{"negative entries", func(c *Config) { c.DropEntries = -1 }, "drop entries"},
		{"no interval", func(c *Config) { c.FlowsTopic, c.FlowInterval = "", 0 }, "flow interval"},
		{"off, topic clash ignored", func(c *Config) { c.Drops, c.DropsTopic = false, c.Topic }, ""},
		{"no topic: off", func(c *Config) { c.DropsTopic = "" }, ""},
	} {
		cfg := base
		c.edit(&cfg)
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
}
