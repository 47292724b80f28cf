(define (build n) (if (= n 0) '() (cons n (build (- n 1)))))
(write (apply + (build 10000)))
(newline)
