(define-syntax swap!
  (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))
(define p 1) (define q 2)
(swap! p q)
(write (list p q)) (newline)
(define tmp 'outer) (define other 'x)
(swap! tmp other)
(write (list tmp other)) (newline)
(define-syntax my-or
  (syntax-rules () ((_) #f) ((_ e) e) ((_ e r ...) (let ((t e)) (if t t (my-or r ...))))))
(define t 5)
(write (my-or #f t)) (newline)
(write (my-or)) (newline)
(write (my-or #f #f 'last)) (newline)
(define-syntax while
  (syntax-rules () ((_ c body ...) (let lp () (when c body ... (lp))))))
(define i 0) (define acc '())
(while (< i 5) (set! acc (cons i acc)) (set! i (+ i 1)))
(write acc) (newline)
(define-syntax my-let*
  (syntax-rules () ((_ () body ...) (let () body ...)) ((_ ((n v) rest ...) body ...) (let ((n v)) (my-let* (rest ...) body ...)))))
(write (my-let* ((a 1) (b (+ a 1)) (c (* b 3))) (list a b c))) (newline)
(define-syntax for
  (syntax-rules (in) ((_ x in lst body ...) (for-each (lambda (x) body ...) lst))))
(for y in '(1 2 3) (display (* y 10)) (display " "))
(newline)
(define-syntax my-list-of-pairs
  (syntax-rules () ((_ (a b) ...) (list (cons a b) ...))))
(write (my-list-of-pairs (1 2) (3 4))) (newline)
