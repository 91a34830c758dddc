package model_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse-authz/gatehouse/model"
)

func ExampleNewCatalog() {
	c, err := model.NewCatalog(map[model.ObjectType][]model.Action{
		"payable":    {"read", "approve"},
		"receivable": {"read"},
	})
	if err != nil {
		panic(err)
	}
	for i, k := range c.Keys() {
		fmt.Println(i, k)
	}
	fmt.Println(c.Check("payable", "pay"))

	_, err = model.NewCatalog(map[model.ObjectType][]model.Action{"Payable": {"read"}})
	fmt.Println(errors.Is(err, model.ErrInvalidCatalog))
	// Output:
	// 0 payable.read
	// 1 payable.approve
	// 2 receivable.read
	// unknown action "pay" for object type "payable"
	// true
}

func ExampleCatalog_SlotOf() {
	c := model.DefaultCatalog()
	slot, ok := c.SlotOf("payable", "approve")
	fmt.Println(ok, c.Key(slot))
	_, ok = c.SlotOf("payable", "fly")
	fmt.Println(ok)
	// Output:
	// true payable.approve
	// false
}

func ExampleParsePermission() {
	p, err := model.ParsePermission("allowed_for_own")
	fmt.Println(p, model.ScopeOf(p), err)
	_, err = model.ParsePermission("allow")
	fmt.Println(errors.Is(err, model.ErrInvalidPermission))
	// Output:
	// allowed_for_own own <nil>
	// true
}

func ExampleParseScope() {
	s, err := model.ParseScope("all")
	fmt.Println(s, err)
	_, err = model.ParseScope("everything")
	fmt.Println(err)
	fmt.Println(errors.Is(err, model.ErrInvalidScope))
	// Output:
	// all <nil>
	// invalid scope: "everything" (want none, own or all)
	// true
}

// Permissions encode to JSON keyed by "object.action", and decode back;
// Validate then checks them against a catalog.
func ExamplePermissions_json() {
	b, _ := json.Marshal(model.Permissions{{Object: "payable", Action: "approve"}: model.AllowedForOwn})
	fmt.Println(string(b))
	var ps model.Permissions
	err := json.Unmarshal([]byte(`{"payable.read":"allowed","payable.launch":"allowed"}`), &ps)
	fmt.Println(len(ps), err)
	fmt.Println(errors.Is(ps.Validate(model.DefaultCatalog()), model.ErrUnknownAction))
	// Output:
	// {"payable.approve":"allowed_for_own"}
	// 2 <nil>
	// true
}
