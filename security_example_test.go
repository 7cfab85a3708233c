package shmkit_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/shmkit/shmkit"
)

// A channel shared with a group on purpose: the creator sets the mode and
// the group (exactly, whatever the umask); a member joins by naming the
// group (and, when it is not the owner, the owner with WithOwner). Without
// that, Open refuses a segment others may write (docs/security.md).
func ExampleWithGroup() {
	group := strconv.Itoa(os.Getgid()) // a group name works too, e.g. "video"
	name := fmt.Sprintf("example-group-%d", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 8, Mode: 0o660, Group: group})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()

	_, err = shmkit.Open(name)
	fmt.Println("without naming the group:", errors.Is(err, shmkit.ErrUntrusted))

	member, err := shmkit.Open(name, shmkit.WithGroup(group))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer member.Close()
	fmt.Println("naming the group: joined")
	// Output:
	// without naming the group: true
	// naming the group: joined
}
