;; R7RS library (util text): export with rename, imports, begin body
(define-library (util text)
  (export shout whisper (rename text-length len))
  (import (scheme base))
  (begin
    (define (shout s) (string-append (string-upcase s) "!"))
    (define (whisper s) (string-downcase s))
    (define (text-length s) (string-length s))
    (define (not-exported) 'no)))
