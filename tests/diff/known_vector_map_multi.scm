(write (vector-map + (vector 1 2) (vector 10 20)))
(newline)
