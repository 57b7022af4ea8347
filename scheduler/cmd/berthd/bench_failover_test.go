//go:build bench

package main

import (
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

// TestBenchFailover measures, on real replicas over a real three-member
// etcd, the time from the leader's kill -9 to the first placement (a
// lease) answered through the other replica, several times over: each
// round starts a fresh standby and kills the current leader.
func TestBenchFailover(t *testing.T) {
	const rounds = 5
	rs := startReplicas(t, "benchfail", 8, 61900)
	leader, standby := rs.leader, rs.standby
	var took []time.Duration
	for round := range rounds {
		if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-leader.exited; err == nil {
			t.Fatal("the leader exited cleanly after SIGKILL")
		}
		killed := time.Now()
		for {
			a := standby.do("POST", api.PathLeases, adminToken, fmt.Sprintf("round-%d", round), api.LeaseRequest{Spec: webSpec(rs.env, "benchfail", fmt.Sprintf("r%d", round))})
			if a.status == http.StatusOK {
				break
			}
			if time.Since(killed) > time.Minute {
				t.Fatalf("round %d: no placement through the new leader a minute after the kill: %d %s", round, a.status, a.body)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took = append(took, time.Since(killed))
		fresh := start(t, http.DefaultClient, []string{"BERTHD_ADMIN_TOKEN=" + adminToken}, rs.args...)
		var standbys []*berthd
		leader, standbys = leaderOf(t, standby, fresh)
		standby = standbys[0]
	}
	slices.Sort(took)
	t.Logf("leader kill -9 to the first placement by the new leader (--leader-ttl 2s, %d rounds): min %s, median %s, max %s",
		rounds, took[0].Round(time.Millisecond), took[rounds/2].Round(time.Millisecond), took[rounds-1].Round(time.Millisecond))
}
