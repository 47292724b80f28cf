"""Python side of running programs: toolchain discovery, JIT, AOT linking, compile cache."""
