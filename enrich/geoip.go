package enrich

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// geoTables says which tables a kind of file fills, and the dictionaries to reload after.
// A City file also fills the country table when no Country file is given (Start decides).
var geoColumns = map[string]string{
	"country": "version, prefix, country_code, country",
	"city":    "version, prefix, country_code, subdivision, city, latitude, longitude",
	"asn":     "version, prefix, asn, asn_org",
}

func geoRow(table string, version uint64, prefix string, f *geoFields) []any {
	switch table {
	case "country":
		return []any{version, prefix, f.CountryCode, f.Country}
	case "city":
		return []any{version, prefix, f.CountryCode, f.Subdivision, f.City, f.Latitude, f.Longitude}
	}
	return []any{version, prefix, f.ASN, f.ASOrg}
}

// geoSource is one watched file and what was last seen and loaded of it.
type geoSource struct {
	kind   string
	path   string
	tables []string // geoip_<table> it fills

	seenSize  int64
	seenMtime time.Time
	loadedSum string // SHA-256 of the content in use
}

// changed stats the file and says whether its size or modification time moved since the last
// look (always true the first time).
func (s *geoSource) changed() (bool, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return false, err
	}
	if st.Size() == s.seenSize && st.ModTime().Equal(s.seenMtime) {
		return false, nil
	}
	s.seenSize, s.seenMtime = st.Size(), st.ModTime()
	return true, nil
}

// load copies every network of the file into the kind's tables as a new version, records the
// load, reloads the dictionaries and drops the older versions. A file whose content is the
// one in use (by this process or, after a restart, the newest load recorded) is not loaded
// again. A corrupt file fails before anything is written, so the previous data stays in use.
func (e *Enricher) load(ctx context.Context, s *geoSource) (loaded bool, err error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(b)
	hexSum := hex.EncodeToString(sum[:])
	if s.loadedSum == "" {
		if s.loadedSum, err = e.lastLoadedSum(ctx, s.kind); err != nil {
			return false, err
		}
	}
	if hexSum == s.loadedSum {
		return false, nil
	}
	db, err := maxminddb.OpenBytes(b)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", s.path, err)
	}
	defer db.Close()
	// Decode every network before writing anything: a database corrupt in its data section
	// must not leave half a version behind.
	type network struct {
		prefix string
		f      *geoFields
	}
	var nets []network
	cache := map[uintptr]*geoFields{} // networks share records: decode each once
	for r := range db.Networks() {
		if err := r.Err(); err != nil {
			return false, fmt.Errorf("read %s: %w", s.path, err)
		}
		f, ok := cache[r.Offset()]
		if !ok {
			var rec map[string]any
			if err := r.Decode(&rec); err != nil {
				return false, fmt.Errorf("decode %s network %s: %w", s.path, r.Prefix(), err)
			}
			ff := fieldsOf(rec)
			f = &ff
			cache[r.Offset()] = f
		}
		nets = append(nets, network{r.Prefix().String(), f})
	}
	version := uint64(e.now().UnixNano())
	for _, table := range s.tables {
		pr, pw := io.Pipe()
		go func() {
			w := bufio.NewWriterSize(pw, 1<<16)
			enc := json.NewEncoder(w)
			for _, n := range nets {
				if err := enc.Encode(geoRow(table, version, n.prefix, n.f)); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(w.Flush())
		}()
		err := e.ch.Insert(ctx, "INSERT INTO geoip_"+table+" ("+geoColumns[table]+") FORMAT JSONCompactEachRow", pr, nil)
		pr.Close()
		if err != nil {
			return false, fmt.Errorf("insert %s into geoip_%s: %w", s.path, table, err)
		}
	}
	md := db.Metadata
	rec, _ := json.Marshal(map[string]any{
		"kind": s.kind, "version": version, "path": s.path, "sha256": hexSum, "db_type": md.DatabaseType,
		"build_at": md.BuildEpoch, "networks": len(nets), "loaded_at": e.now().UnixMilli(),
	})
	if err := e.ch.Insert(ctx, "INSERT INTO geoip_loads FORMAT JSONEachRow", bytesReader(rec), nil); err != nil {
		return false, fmt.Errorf("record load of %s: %w", s.path, err)
	}
	for _, table := range s.tables {
		if err := e.ch.Exec(ctx, "SYSTEM RELOAD DICTIONARY `"+e.cfg.ClickHouse.Database+"`.geoip_"+table+"_dict", nil); err != nil {
			return false, fmt.Errorf("reload dictionary geoip_%s_dict: %w", table, err)
		}
		if err := e.dropOlder(ctx, "geoip_"+table, version); err != nil {
			// The dictionaries read the newest version only: old partitions cost disk, not answers.
			e.log.Warn("geoip: could not drop the previous loads", "table", "geoip_"+table, "err", err)
		}
	}
	s.loadedSum = hexSum
	e.m.geoNetworks.WithLabelValues(s.kind).Set(float64(len(nets)))
	e.log.Info("geoip database loaded", "kind", s.kind, "path", s.path, "type", md.DatabaseType,
		"networks", len(nets), "build", time.Unix(int64(md.BuildEpoch), 0).UTC())
	return true, nil
}

// lastLoadedSum is the SHA-256 of the newest load of kind recorded, "" if none.
func (e *Enricher) lastLoadedSum(ctx context.Context, kind string) (string, error) {
	sum := ""
	err := e.ch.Rows(ctx, "SELECT argMax(sha256, version) AS s FROM geoip_loads WHERE kind = {kind:String}",
		map[string]string{"kind": kind}, func(r map[string]json.RawMessage) error { return json.Unmarshal(r["s"], &sum) })
	return sum, err
}

// dropOlder drops the partitions (one per load) of table older than version.
func (e *Enricher) dropOlder(ctx context.Context, table string, version uint64) error {
	var old []string
	err := e.ch.Rows(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = {t:String} AND active AND toUInt64(partition) < {v:UInt64}",
		map[string]string{"t": table, "v": strconv.FormatUint(version, 10)}, func(r map[string]json.RawMessage) error {
			var p string
			if err := json.Unmarshal(r["partition"], &p); err != nil {
				return err
			}
			old = append(old, p)
			return nil
		})
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			return fmt.Errorf("unexpected partition %q", p)
		}
		if err := e.ch.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION "+p, nil); err != nil {
			return err
		}
	}
	return nil
}
