package enrich

import (
	"strconv"
	"strings"
)

// geoFields are the values packetlake keeps of one network's record, whichever vendor's layout
// it has: MaxMind's (country.iso_code, city.names.en, autonomous_system_number, ...) or IPinfo's
// flat one (country_code, country, asn "AS15169", as_name).
type geoFields struct {
	CountryCode, Country, Subdivision, City string
	Latitude, Longitude                     float64
	ASN                                     uint32
	ASOrg                                   string
}

// fieldsOf reads a decoded record. A network of an anycast or satellite provider may have no
// country but a registered_country: that one is used then, as MaxMind advises for display.
func fieldsOf(rec map[string]any) geoFields {
	var f geoFields
	if c, ok := rec["country"].(map[string]any); ok {
		f.CountryCode, f.Country = str(c["iso_code"]), englishName(c)
	} else {
		f.Country = str(rec["country"]) // IPinfo: the name
	}
	if f.CountryCode == "" {
		if c, ok := rec["registered_country"].(map[string]any); ok {
			f.CountryCode, f.Country = str(c["iso_code"]), englishName(c)
		}
	}
	if f.CountryCode == "" {
		f.CountryCode = str(rec["country_code"])
	}
	if c, ok := rec["city"].(map[string]any); ok {
		f.City = englishName(c)
	} else {
		f.City = str(rec["city"])
	}
	if subs, ok := rec["subdivisions"].([]any); ok && len(subs) > 0 {
		if s, ok := subs[0].(map[string]any); ok {
			f.Subdivision = englishName(s)
		}
	} else {
		f.Subdivision = str(rec["region"])
	}
	if l, ok := rec["location"].(map[string]any); ok {
		f.Latitude, f.Longitude = num(l["latitude"]), num(l["longitude"])
	} else {
		f.Latitude, f.Longitude = num(rec["latitude"]), num(rec["longitude"])
	}
	switch a := rec["autonomous_system_number"].(type) {
	case nil:
		if s, ok := rec["asn"].(string); ok { // IPinfo: "AS15169"
			n, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(s), "AS"), 10, 32)
			f.ASN = uint32(n)
		}
	default:
		f.ASN = uint32(num(a))
	}
	f.ASOrg = str(rec["autonomous_system_organization"])
	if f.ASOrg == "" {
		f.ASOrg = str(rec["as_name"])
	}
	return f
}

func englishName(m map[string]any) string {
	if names, ok := m["names"].(map[string]any); ok {
		return str(names["en"])
	}
	return ""
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// num converts the integer and float types the MaxMind decoder yields.
func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case float32:
		return float64(n)
	case uint64:
		return float64(n)
	case uint32:
		return float64(n)
	case uint16:
		return float64(n)
	case int:
		return float64(n)
	case int32:
		return float64(n)
	case int64:
		return float64(n)
	case string:
		f, _ := strconv.ParseFloat(n, 64)
		return f
	}
	return 0
}
