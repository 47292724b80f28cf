(write (guard (e (#t 'caught-error)) (error "boom" 1 2))) (newline)
(write (guard (e ((string? e) 'string) (else 'other)) (error "boom"))) (newline)
(write (guard (e ((symbol? e) e)) (dynamic-wind (lambda () #f) (lambda () (raise 'inside)) (lambda () (display "cleanup ") )))) (newline)
