(for-each (lambda (x) (display x) (newline))
  (list 0.1 (+ 0.1 0.2) 1.5 -0.25 100.0 1e21 1e-7 123456.789 (/ 1.0 3) 3.0 (* 1.0 (expt 2 60)) 2.5e-10))
(display (exact->inexact 2/3)) (newline)
(display (sqrt 2.0)) (newline)
