// Anchors the shared LibTorch precompiled header target; holds no code.
