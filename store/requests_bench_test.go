package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// BenchmarkRequestRecords measures what the records of request IDs cost
// the applies of a busy member: the store holds 15 minutes of them
// (SHOAL_REQUEST_RECORDS, at least 1,000, default 200,000: about 220
// changes a second),
// and each round appends and applies a batch of 64 file writes, each
// with an ID of its own, as a primary does under load. Every ID of the
// batch is new and the oldest expire as the group's clock moves on: the
// steady state. "random" IDs land all over the records' B-tree, as
// random Idempotency-Keys did; "ordered" ones begin with the time, as
// the router's and the client's do now. It reports the pages each
// change writes to meta.db.
func BenchmarkRequestRecords(b *testing.B) {
	records := 200_000
	if n, err := fmt.Sscan(os.Getenv("SHOAL_REQUEST_RECORDS"), &records); n != 1 || err != nil || records < 1000 {
		records = 200_000
	}
	const batch = 64
	step := int64(requestTTL) / int64(records) // between two IDs' times
	for _, ordered := range []bool{false, true} {
		name := map[bool]string{false: "random", true: "ordered"}[ordered]
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			id := func(clock int64) string {
				var r [16]byte
				rand.Read(r[:])
				if ordered {
					binary.BigEndian.PutUint64(r[:8], uint64(clock))
				}
				return "r:" + hex.EncodeToString(r[:])
			}
			rrFill(b, dir, records, step, id)
			d := crOpen(b, dir)
			clock := int64(records) * step
			index := uint64(0)
			st := d.bolt.Stats()
			before := st.TxStats.GetWrite()
			for b.Loop() {
				es := make([]meta.Entry, batch)
				for k := range es {
					index++
					clock += step
					op := putOp(fmt.Sprintf("/new/f%09d", index), 1)
					op.ReqID, op.Clock = id(clock), clock
					es[k] = meta.Entry{Index: index, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: op}
				}
				if err := d.Append(es); err != nil {
					b.Fatal(err)
				}
				if _, _, err := d.Apply(index); err != nil {
					b.Fatal(err)
				}
			}
			st = d.bolt.Stats()
			pages := st.TxStats.GetWrite() - before
			b.ReportMetric(float64(pages)/float64(index), "pages/change")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(index), "ns/change")
		})
	}
}

// rrFill gives the store at dir records of n requests made step apart
// (a file write each, in 1,000 directories), without fsync.
func rrFill(b *testing.B, dir string, n int, step int64, id func(clock int64) string) {
	db := openUnsynced(b, dir)
	defer db.Close()
	start := time.Now()
	const perTx = 5000
	for i := 0; i < n; i += perTx {
		err := db.Update(func(tx *bbolt.Tx) error {
			for j := i; j < min(i+perTx, n); j++ {
				clock := int64(j) * step
				op := putOp(fmt.Sprintf("/d%03d/f%07d", j%1000, j), 1)
				op.ReqID = id(clock)
				if _, err := applyOnce(tx, &op, clock); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d request records in %v", n, time.Since(start).Round(time.Millisecond))
}
