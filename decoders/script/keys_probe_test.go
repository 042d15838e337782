package script

import (
	"testing"

	"github.com/dop251/goja"
)

func BenchmarkProbeKeys(b *testing.B) {
	rt := goja.New()
	v, _ := rt.RunString(`var o = {}; for (var i = 0; i < 16; i++) o["pm" + i + "_mass_concentration"] = {displayName: "x", unit: "y", value: i}; o`)
	obj := v.(*goja.Object)
	ok, _ := goja.AssertFunction(rt.Get("Object").(*goja.Object).Get("keys"))
	var walk func(o *goja.Object)
	walk = func(o *goja.Object) {
		ks, _ := ok(goja.Undefined(), o)
		ko := ks.(*goja.Object)
		n := int(ko.Get("length").ToInteger())
		for i := 0; i < n; i++ {
			k := ko.Get(itoa(i)).String()
			if c, isObj := o.Get(k).(*goja.Object); isObj {
				walk(c)
			}
		}
	}
	b.Run("Keys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, k := range obj.Keys() {
				_ = obj.Get(k).(*goja.Object).Keys()
			}
		}
	})
	b.Run("ObjectKeys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			walk(obj)
		}
	})
}
