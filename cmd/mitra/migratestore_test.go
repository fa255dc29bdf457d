package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

func TestMigrateStoreToPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	data := t.TempDir()
	src, err := sqlite.Open(ctx, data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.CreateUser(ctx, &store.User{Name: "alice", Role: "analyst", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateToken(ctx, &store.Token{User: "alice", Hash: "th", Role: "analyst"}); err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Title: "Shared", Alias: "shared", Readers: []string{"alice"}, Writers: []string{"alice"}}
	if err := src.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	id := "indicator--" + uuid.NewString()
	objs := []store.Object{storetest.Obj(t, storetest.Indicator(id, base, base)), storetest.Obj(t, storetest.Indicator(id, base, base.Add(time.Hour)))}
	for range 1200 {
		objs = append(objs, storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base)))
	}
	st := &store.Status{ID: uuid.NewString(), Owner: "alice", CollectionID: c.ID, RequestTimestamp: base, Complete: true, TotalCount: len(objs)}
	if _, err := src.AddObjects(ctx, c.ID, objs, st); err != nil {
		t.Fatal(err)
	}
	if _, err := src.DeleteObject(ctx, c.ID, objs[5].ID, store.Query{}); err != nil {
		t.Fatal(err)
	}
	if err := src.AppendAudit(ctx, store.AuditRecord{Principal: "alice", Action: "objects.add", Path: "/api/"}); err != nil {
		t.Fatal(err)
	}
	want, err := src.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantObjs []store.ObjectRecord
	src.ExportObjects(ctx, c.ID, func(o []store.ObjectRecord) error { wantObjs = append(wantObjs, o...); return nil })
	src.Close()

	out, errOut, err := mitra(t, nil, "", "migrate-store", "--from", "sqlite:"+data, "--to", dsn)
	if err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "verified the counts") || !strings.Contains(out, "1201 object versions") {
		t.Errorf("summary: %q", out)
	}
	if !strings.Contains(errOut, "copying rows") || !strings.Contains(errOut, "100%") {
		t.Errorf("no progress bar on stderr: %q", errOut)
	}

	dst, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got, err := dst.Counts(ctx)
	if err != nil || got != want {
		t.Fatalf("counts after migrate-store: %+v (%v), want %+v", got, err, want)
	}
	var gotObjs []store.ObjectRecord
	dst.ExportObjects(ctx, c.ID, func(o []store.ObjectRecord) error { gotObjs = append(gotObjs, o...); return nil })
	if !reflect.DeepEqual(gotObjs, wantObjs) {
		t.Error("object versions differ after migrate-store")
	}
	if s, err := dst.GetStatus(ctx, st.ID); err != nil || s.TotalCount != len(objs) {
		t.Errorf("status after migrate-store: %+v, %v", s, err)
	}
	if u, err := dst.GetUser(ctx, "alice"); err != nil || u.PasswordHash != "h" {
		t.Errorf("user after migrate-store: %+v, %v", u, err)
	}

	// A second run finds the target not empty and changes nothing.
	if _, errOut, err := mitra(t, nil, "", "migrate-store", "--from", "sqlite:"+data, "--to", dsn); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second migrate-store: %v\n%s", err, errOut)
	}
	if again, _ := dst.Counts(ctx); again != want {
		t.Errorf("second migrate-store changed the target: %+v", again)
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	out, errOut, err := mitra(t, nil, "", "migrate", "--store", dsn)
	if err != nil || !strings.Contains(out, "migrations applied now") || strings.Contains(out, "(0 migrations") {
		t.Fatalf("migrate: %q %v\n%s", out, err, errOut)
	}
	out, _, err = mitra(t, nil, "", "migrate", "--store", dsn)
	if err != nil || !strings.Contains(out, "(0 migrations applied now)") {
		t.Errorf("migrate again: %q %v", out, err)
	}
	// MITRA_STORE selects PostgreSQL for every command.
	if _, _, err := mitra(t, map[string]string{"MITRA_STORE": dsn, "MITRA_USER_PASSWORD": "a-long-password"}, "", "user", "create", "erin"); err != nil {
		t.Fatal(err)
	}
	out, _, err = mitra(t, nil, "", "user", "list", "--store", dsn)
	if err != nil || !strings.Contains(out, "erin") {
		t.Errorf("user list on PostgreSQL: %q %v", out, err)
	}
}
