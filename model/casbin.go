package model

import (
	_ "embed"

	casbinmodel "github.com/casbin/casbin/v2/model"
)

//go:embed gatehouse.conf
var text string

// Text returns the Casbin model (the gatehouse.conf file), with its comments.
func Text() string { return text }

// NewCasbinModel parses [Text] into a fresh Casbin model, ready for an
// enforcer or an adapter's LoadPolicy.
func NewCasbinModel() (casbinmodel.Model, error) { return casbinmodel.NewModelFromString(text) }
