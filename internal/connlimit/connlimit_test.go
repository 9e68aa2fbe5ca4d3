package connlimit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// conn is a test connection: its client and its number.
type conn struct {
	key int
	n   int
}

func (c conn) String() string { return fmt.Sprintf("%d/%d", c.key, c.n) }

// TestAdmit plays sequences of events on a table and checks which
// connection each admission drops, or whether it refuses the newcomer.
//
// Events: "+K" admits a connection of key K (numbered in order: the first
// connection is 1); "bN" marks connection N busy; "iN" idle again; "rN"
// releases it; "pN" gives it unread bytes (not idle). want lists, for each
// "+" in order, "-" (admitted, nothing dropped), "K/N" (admitted, N of key
// K dropped) or "refused".
func TestAdmit(t *testing.T) {
	root := func(k int) bool { return k == 0 }
	tests := []struct {
		name   string
		lim    Limits
		priv   func(int) bool
		events string
		want   string
	}{
		{"room", Limits{Max: 3}, nil, "+1 +2 +3", "- - -"},
		{"full: the oldest idle goes", Limits{Max: 2}, nil, "+1 +1 +1 +1", "- - 1/1 1/2"},
		{"busy ones stay", Limits{Max: 2}, nil, "+1 +1 b1 +1 +1", "- - 1/2 1/3"},
		{"all busy: refused", Limits{Max: 2}, nil, "+1 +1 b1 b2 +1 r1 +1", "- - refused -"},
		{"the heaviest key gives way", Limits{Max: 3}, nil, "+1 +2 +2 +1", "- - - 2/2"},
		{"the heaviest key's oldest", Limits{Max: 4}, nil, "+2 +1 +2 +2 +1", "- - - - 2/1"},
		{"ties: the oldest", Limits{Max: 2}, nil, "+1 +2 +3", "- - 1/1"},
		{"idle again is young", Limits{Max: 2}, nil, "+1 +1 b1 i1 +1", "- - 1/2"},
		{"unread bytes are not idle", Limits{Max: 2}, nil, "+1 +1 p1 +1", "- - 1/2"},
		{"nothing idle", Limits{Max: 2}, nil, "+1 +1 p1 p2 +1", "- - refused"},
		{"released slots are free", Limits{Max: 2}, nil, "+1 +1 r1 +1", "- - -"},
		{"per key: its own oldest", Limits{Max: 10, PerKey: 2}, nil, "+1 +2 +2 +1 +2", "- - - - 2/2"},
		{"per key: all busy", Limits{Max: 10, PerKey: 2}, nil, "+2 +2 b1 b2 +2 +1", "- - refused -"},
		{"per key: privileged unbound", Limits{Max: 10, PerKey: 1}, root, "+0 +0 +0", "- - -"},
		{"reserve: kept for root", Limits{Max: 3, Reserve: 1}, root, "+1 +2 +3 +0", "- - 1/1 -"},
		{"reserve: unprivileged busy", Limits{Max: 3, Reserve: 1}, root, "+1 +2 b1 b2 +3 +0", "- - refused -"},
		{"reserve: root evicts when full", Limits{Max: 3, Reserve: 1}, root, "+1 +0 +0 +0", "- - - 0/2"},
		{"reserve: root over unprivileged", Limits{Max: 3, Reserve: 1}, root, "+0 +1 +1 +0", "- - - 1/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := New[int, conn](tt.lim, tt.priv)
			slots := map[int]*Slot[int, conn]{}
			pending := map[conn]bool{}
			idle := func(c conn) bool { return !pending[c] }
			var got []string
			n := 0
			for _, ev := range strings.Fields(tt.events) {
				var arg int
				fmt.Sscan(ev[1:], &arg)
				switch ev[0] {
				case '+':
					n++
					c := conn{arg, n}
					s, victim, dropped := tab.Admit(arg, c, idle)
					switch {
					case s == nil:
						got = append(got, "refused")
					case dropped:
						got = append(got, victim.String())
					default:
						got = append(got, "-")
					}
					if s != nil {
						slots[n] = s
						if s.Key() != arg {
							t.Errorf("slot of %v has key %d", c, s.Key())
						}
					}
				case 'b':
					tab.Busy(slots[arg])
				case 'i':
					tab.Idle(slots[arg])
				case 'r':
					tab.Release(slots[arg])
				case 'p':
					pending[slots[arg].conn] = true
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("events %q:\n got %s\nwant %s", tt.events, g, tt.want)
			}
		})
	}
}

// TestDroppedSlot checks that a dropped slot's methods say so and change
// nothing.
func TestDroppedSlot(t *testing.T) {
	tab := New[int, int](Limits{Max: 1}, nil)
	a, _, _ := tab.Admit(1, 1, nil)
	b, victim, dropped := tab.Admit(1, 2, nil)
	if !dropped || victim != 1 {
		t.Fatalf("second admission dropped %v, %d; want connection 1", dropped, victim)
	}
	if tab.Busy(a) || tab.Idle(a) || tab.Release(a) {
		t.Error("a dropped slot reports itself held")
	}
	if tab.Len() != 1 || tab.IdleLen() != 1 {
		t.Errorf("Len %d, IdleLen %d; want 1, 1", tab.Len(), tab.IdleLen())
	}
	tab.Busy(b)
	if tab.IdleLen() != 0 {
		t.Errorf("IdleLen %d with the only slot busy", tab.IdleLen())
	}
	tab.Idle(b)
	if tab.IdleLen() != 1 {
		t.Errorf("IdleLen %d with the only slot idle again", tab.IdleLen())
	}
	if !tab.Release(b) || tab.Release(b) {
		t.Error("Release of a held slot: want true once, then false")
	}
	if tab.Len() != 0 {
		t.Errorf("Len %d after release, want 0", tab.Len())
	}
	if k, n := tab.Heaviest(); n != 0 {
		t.Errorf("Heaviest of an empty table: %d, %d", k, n)
	}
}

// TestBounds checks the table's bounds under many concurrent clients.
func TestBounds(t *testing.T) {
	lim := Limits{Max: 8, PerKey: 3, Reserve: 2}
	tab := New[int, int](lim, func(k int) bool { return k == 0 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*Slot[int, int]
			for i := range 2000 {
				s, _, _ := tab.Admit(g%4, i, nil)
				if s != nil {
					mine = append(mine, s)
					if i%3 == 0 {
						tab.Busy(s)
					}
				}
				if len(mine) > 4 {
					tab.Release(mine[0])
					mine = mine[1:]
				}
			}
			for _, s := range mine {
				tab.Release(s)
			}
		}()
	}
	stop := make(chan struct{})
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for {
			select {
			case <-stop:
				return
			default:
			}
			tab.mu.Lock()
			if tab.n > lim.Max {
				t.Errorf("%d slots held, at most %d", tab.n, lim.Max)
			}
			if tab.unpriv > lim.Max-lim.Reserve {
				t.Errorf("%d unprivileged slots, at most %d", tab.unpriv, lim.Max-lim.Reserve)
			}
			sum, idle := 0, 0
			for k, c := range tab.keys {
				sum += c.n
				for s := c.idle.head; s != nil; s = s.next {
					idle++
				}
				if k != 0 && c.n > lim.PerKey {
					t.Errorf("key %d holds %d slots, at most %d", k, c.n, lim.PerKey)
				}
			}
			if sum != tab.n || idle != tab.idle {
				t.Errorf("the keys hold %d slots, %d idle; the table counts %d, %d idle", sum, idle, tab.n, tab.idle)
			}
			tab.mu.Unlock()
		}
	}()
	wg.Wait()
	close(stop)
	<-checked
	if n := tab.Len(); n != 0 {
		t.Errorf("%d slots held after every release", n)
	}
}

func BenchmarkAdmitFull(b *testing.B) {
	b.ReportAllocs()
	tab := New[int, int](Limits{Max: 64, PerKey: 16, Reserve: 16}, func(k int) bool { return k == 0 })
	for i := range b.N {
		tab.Admit(i%5, i, nil)
	}
}
