(write (symbol=? 'a 'a))
(newline)
