(define (queens board-size)
  (define (ok? row dist placed)
    (or (null? placed)
        (and (not (= (car placed) (+ row dist)))
             (not (= (car placed) (- row dist)))
             (not (= (car placed) row))
             (ok? row (+ dist 1) (cdr placed)))))
  (define (try k placed)
    (if (= k 0) 1
        (let loop ((row 1) (n 0))
          (if (> row board-size) n
              (loop (+ row 1) (if (ok? row 1 placed) (+ n (try (- k 1) (cons row placed))) n))))))
  (try board-size '()))
(write (map queens '(1 2 3 4 5 6 7 8))) (newline)
