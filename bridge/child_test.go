package bridge

func childInBridge() int { return 0 }
