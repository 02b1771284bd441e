package outbox

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/warrenhq/warren/shared/messaging"
)

// A message goes in the wave after the previous one of its correlation id and never
// before the previous one of its topic; everything else shares the first wave.
func TestWaves(t *testing.T) {
	msg := func(id int64, topic, key string) row {
		md := message.Metadata{}
		if key != "" {
			md.Set(messaging.HeaderCorrelationID, key)
		}
		return row{id: id, topic: topic, metadata: md}
	}
	for _, tc := range []struct {
		batch []row
		want  string
	}{
		{[]row{msg(1, "a", "o1"), msg(2, "b", "o2"), msg(3, "a", "o3"), msg(4, "c", "")}, "[[1 2 3 4]]"},
		// o1 again on another topic: after its first.
		{[]row{msg(1, "a", "o1"), msg(2, "b", "o2"), msg(3, "b", "o1")}, "[[1 2] [3]]"},
		// 3 is after 2 on topic b, which waits for o1; 5 only follows 1 on topic a.
		{[]row{msg(1, "a", "o1"), msg(2, "b", "o1"), msg(3, "b", "o2"), msg(4, "c", "o1"), msg(5, "a", "")}, "[[1 5] [2 3] [4]]"},
		// no correlation id: only the topic's order counts.
		{[]row{msg(1, "a", ""), msg(2, "b", ""), msg(3, "a", "")}, "[[1 2 3]]"},
	} {
		var got [][]int64
		for _, wave := range waves(tc.batch) {
			var ids []int64
			for _, m := range wave {
				ids = append(ids, m.id)
			}
			got = append(got, ids)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("waves = %v, want %s", got, tc.want)
		}
	}
}
