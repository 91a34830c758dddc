package main

import (
	"context"

	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/gatehouse-authz/gatehouse/policy/policytest"
	"github.com/gatehouse-authz/gatehouse/store"
)

func seedDB(ctx context.Context, dsn string, fix *policytest.Fixture) error {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	st, err := store.New(ctx, db)
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	cat, err := fix.CatalogOrDefault()
	if err != nil {
		return err
	}
	eng, err := policy.New(ctx, policy.WithStore(st), policy.WithCatalog(cat))
	if err != nil {
		return err
	}
	return fix.Apply(ctx, eng)
}
