(write (cadddr '(1 2 3 4)))
(newline)
