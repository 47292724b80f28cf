(write (let loop ((i 0) (acc '())) (if (= i 5) (reverse acc) (loop (+ i 1) (cons (* i i) acc))))) (newline)
(write (let loop ((i 0)) (if (< i 1000000) (loop (+ i 1)) i))) (newline)
(define (count-down n) (let lp ((n n) (out '())) (if (zero? n) out (lp (- n 1) (cons n out)))))
(write (count-down 5)) (newline)
