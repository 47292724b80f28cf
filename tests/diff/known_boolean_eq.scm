(write (boolean=? #t #t))
(newline)
