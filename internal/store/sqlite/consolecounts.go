package sqlite

import (
	"encoding/json"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

// Migration 0014 kept the console's counts (console_counts,
// console_sighting_days) with an AFTER INSERT trigger on objects: a
// trigger program and an upsert per object row, about 8 µs of the writer's
// time per object. Migration 0015 drops it; InsertVersions, through which
// every object row is written (TAXII add, group commit, federation,
// import), adds each batch's counts per group instead, one statement per
// table with the groups as one JSON parameter. Supersedes and deletes keep
// their triggers: they are rare next to adds.
const (
	addConsoleCounts = `INSERT INTO console_counts (cid, type, tlp, submitter, recipients, n)
		SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 FROM json_each(?) j WHERE true
		ON CONFLICT (cid, type, tlp, submitter, recipients) DO UPDATE SET n = n + excluded.n`
	addSightingDays = `INSERT INTO console_sighting_days (cid, day, tlp, submitter, recipients, n)
		SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 FROM json_each(?) j WHERE true
		ON CONFLICT (cid, day, tlp, submitter, recipients) DO UPDATE SET n = n + excluded.n`
)

// dayMicros is a day in microseconds: console_sighting_days.day is
// date_added / dayMicros, as in migration 0014.
const dayMicros = 86400000000

// countGroup is what console_counts counts by.
type countGroup struct {
	typ        string
	tlp        int
	submitter  string
	recipients string
}

// dayGroup is what console_sighting_days counts by.
type dayGroup struct {
	day        int64
	tlp        int
	submitter  string
	recipients string
}

// insertConsoleCounts queues what the console_counts_add trigger did for
// rows: every latest version counts once in its group, and a latest
// sighting once in the day of its date_added.
func insertConsoleCounts(b *sqlstore.Batch, cid int64, rows []store.NewVersion) {
	counts := map[countGroup]int{}
	var days map[dayGroup]int
	for _, r := range rows {
		if !r.Latest {
			continue
		}
		recipients := sqlstore.JSONList(r.Obj.Recipients)
		counts[countGroup{r.Obj.Type, r.Obj.TLP, r.Obj.Submitter, recipients}]++
		if r.Obj.Type == "sighting" {
			if days == nil {
				days = map[dayGroup]int{}
			}
			days[dayGroup{r.Added / dayMicros, r.Obj.TLP, r.Obj.Submitter, recipients}]++
		}
	}
	if len(counts) > 0 {
		l := make([][5]any, 0, len(counts))
		for g, n := range counts {
			l = append(l, [5]any{g.typ, g.tlp, g.submitter, g.recipients, n})
		}
		j, _ := json.Marshal(l) // strings and numbers: cannot fail
		b.Queue(addConsoleCounts, cid, string(j))
	}
	if len(days) > 0 {
		l := make([][5]any, 0, len(days))
		for g, n := range days {
			l = append(l, [5]any{g.day, g.tlp, g.submitter, g.recipients, n})
		}
		j, _ := json.Marshal(l)
		b.Queue(addSightingDays, cid, string(j))
	}
}
