(call-with-values (lambda () (exact-integer-sqrt 17)) (lambda (s r) (write (list s r)) (newline)))
