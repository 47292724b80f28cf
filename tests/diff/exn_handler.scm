(write (with-exception-handler
  (lambda (e) 10)
  (lambda () (+ 1 (raise-continuable 'c))))) (newline)
(write (call/cc (lambda (k)
  (with-exception-handler
    (lambda (e) (k (list 'handled e)))
    (lambda () (raise 'boom)))))) (newline)
(write (with-exception-handler
  (lambda (e) (* e 2))
  (lambda () (list (raise-continuable 1) (raise-continuable 2))))) (newline)
(write (guard (e (#t (list 'outer e)))
  (with-exception-handler
    (lambda (e) (raise (list 'wrapped e)))
    (lambda () (raise 'inner))))) (newline)
