package main

import (
	"github.com/shmkit/shmkit/internal/holders"
	"github.com/shmkit/shmkit/segment"
)

// holder, participant and judgement are internal/holders' types under the
// names shmctl's commands use.
type (
	holder      = holders.Holder
	participant = holders.Participant
	judgement   = holders.Judgement
	procTable   = holders.Table
)

// participantSources read the participants registered in a segment, such
// as the participant table of a channel. Each package that keeps such a
// table gets one file here that appends its reader in an init function; gc
// and rm then count its live participants as holders.
var participantSources []holders.Source

// scanProcs reads /proc once (holders.Scan).
func scanProcs() (*procTable, error) { return holders.Scan() }

// judge decides whether anything holds the segment info describes, counting
// the participants of every participantSource (holders.Table.Judge).
func judge(pt *procTable, info segment.Info) judgement {
	return pt.Judge(info, holders.Sources(participantSources...))
}

// holdersText renders holders as "pid 12 (creator, maps), pid 40 (maps)".
func holdersText(hs []holder) string { return holders.Text(hs) }
