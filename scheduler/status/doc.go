// Package status is berthd's live status page at /: per pool, the hosts
// with bars for CPU, memory, container slots, disk (volume space held by
// volumes' sizes) and GPUs (with the ids held), each used of capacity and
// free, "not accounted" on a host that declares no disk or no GPUs;
// cordoned and unhealthy hosts, the leases held by token name with their
// age, and the recent placement failures with their explanation.
//
// The page is server-rendered HTML (html/template, embedded). It asks for
// a token once and keeps it in the browser's session storage; a few lines
// of JavaScript fetch the rendered fragment again every two seconds, with
// the token, so the page refreshes without reloading. The fragment is
// built from the API's own answers (usage, pools, leases), asked with the
// caller's token, so a standby's page shows the leader's state and a
// token sees what the API would show it.
package status
